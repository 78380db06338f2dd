"""Arrays are real numbers or refused: no silent coercion (issue 19).

NumPy would drop an imaginary part, parse strings, count days for dates and ignore a
mask; a loss computed from any of those would be silently wrong.  The prediction, the
target, extra inputs and weights follow the same rules.
"""

from __future__ import annotations

import numpy as np
import pytest

import symloss

BAD = {
    "complex": np.array([1 + 2j, 2.0]),
    "strings": ["1", "2.5"],
    "datetime": np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"),
    "timedelta": np.array([1, 2], dtype="timedelta64[s]"),
    "objects": np.array([1.0, None], dtype=object),
    "masked": np.ma.array([1.0, 2.0], mask=[False, True]),
}
GOOD = np.array([0.5, 1.5])
CALLS = ("__call__", "grad", "hess", "value_and_grad")


@pytest.mark.parametrize("kind", BAD)
@pytest.mark.parametrize("slot", ["pred", "target"])
@pytest.mark.parametrize("call", CALLS)
def test_non_real_inputs_are_refused_alike(kind, slot, call):
    L = symloss.get("mse")
    args = (BAD[kind], GOOD) if slot == "pred" else (GOOD, BAD[kind])
    with pytest.raises(symloss.InputError, match="prediction|target") as info:
        getattr(L, call)(*args)
    assert ("prediction" if slot == "pred" else "target") in str(info.value)
    assert isinstance(info.value, ValueError)  # `except ValueError` keeps working


@pytest.mark.parametrize("kind", ["complex", "strings", "masked"])
def test_extra_inputs_and_weights_follow_the_same_rules(kind):
    nll = symloss.get("gaussian_nll")
    with pytest.raises(symloss.InputError, match="var"):
        nll(GOOD, GOOD, var=BAD[kind])
    with pytest.raises(symloss.InputError, match="weight"):
        symloss.get("mse")(GOOD, GOOD, weight=BAD[kind])


def test_a_mask_without_masked_elements_is_just_its_data():
    L = symloss.get("mse")
    # (1 - 0)^2 and (2 - 0)^2, mean 2.5: by hand
    assert L(np.ma.array([1.0, 2.0], mask=[False, False]), [0.0, 0.0]) == 2.5


def test_booleans_and_integers_are_numbers():
    L = symloss.get("mse")
    assert L(np.array([1, 3]), np.array([True, False])) == pytest.approx((0 + 9) / 2)


def test_every_error_a_caller_can_meet_is_a_symloss_error():
    """Issue 14: user-facing errors live in one module and subclass SymlossError, and
    still the built-in class a caller would have caught before."""
    cases = [
        (lambda: symloss.get("no_such_loss"), symloss.UnknownLossError, KeyError),
        (lambda: symloss.get("huber", nope=1), symloss.ArgumentError, TypeError),
        (lambda: symloss.get("huber", delta=-1.0), symloss.OptionError, ValueError),
        (lambda: symloss.get("huber", reduction="max"), symloss.OptionError, ValueError),
        (lambda: symloss.get("mse")([1.0], [1.0, 2.0]), symloss.InputError, ValueError),
        (lambda: symloss.get("mse").latex(part="nope"), symloss.OptionError, ValueError),
        (lambda: symloss.register(symloss.get("mse")), symloss.DefinitionError, ValueError),
        (lambda: symloss.set_backend("gpu"), symloss.BackendError, RuntimeError),
        (lambda: symloss.configure(threads=0), symloss.SettingError, ValueError),
    ]
    for call, ours, builtin in cases:
        with pytest.raises(ours) as info:
            call()
        assert isinstance(info.value, symloss.SymlossError) and isinstance(info.value, builtin)
    assert str(symloss.UnknownLossError("unknown loss 'x'")) == "unknown loss 'x'"  # no quotes
    exported = {name for name in symloss.__all__ if name.endswith(("Error", "Exceeded", "Failed"))}
    from symloss import errors

    defined = {
        n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, Exception)
    }
    assert defined - {"CompilerUnavailable"} <= exported | {"UntrustedCache"}
