"""What a page shows about one loss (:class:`Sheet`), computed from the Loss alone."""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symloss.core.loss import Loss
from symloss.docs.options import Note, computed_notes, option_effects, where_tex
from symloss.docs.reference import Equivalent, Example, equivalents, links, worked_example
from symloss.docs.table import article_table
from symloss.printing.breaking import aligned, broken
from symloss.printing.printers import _PRINTERS, latex_expr
from symloss.registry import get
from symloss.symbolic.derivation import E, Step


# ============================================================================ content
@dataclass(frozen=True)
class Formula:
    """One displayed formula: a label for people and its LaTeX."""

    label: str
    tex: str
    #: The same formula laid out for a page: ``tex`` when it fits a column, else an
    #: ``aligned`` environment cut at its top-level signs (symloss.printing.breaking).
    display: str = ""

    @property
    def shown(self) -> str:
        return self.display or self.tex


def equation_formula(label: str, lhs: sp.Expr, rhs: sp.Expr, style: str = "standard") -> Formula:
    """A :class:`Formula` of ``lhs = rhs``, with its layout for a page."""
    printer = _PRINTERS[style]()
    left = latex_expr(lhs, style)
    lines = broken(rhs, printer)
    tex = f"{left} = {latex_expr(rhs, style)}"
    if len(lines) == 1:
        return Formula(label, tex)
    return Formula(label, tex, r"\begin{aligned}" + aligned(left, [lines]) + r"\end{aligned}")


@dataclass(frozen=True)
class Sheet:
    """Everything a page says about one loss, independent of the output format."""

    loss: Loss
    definitions: tuple[Formula, ...]
    gradients: tuple[Formula, ...]
    hessians: tuple[Formula, ...]
    hessian_note: str
    steps: tuple[Step, ...]
    domains: tuple[tuple[str, str, str, str], ...]  # (array, role, LaTeX set, description)
    constraints: tuple[tuple[str, str, str, bool], ...]  # (name, LaTeX, description, used)
    params: tuple[tuple[str, str, str, str, str], ...]  # (LaTeX, name, value, domain, text)
    classification: bool
    where: str = ""  # the hyperparameters' values, \delta = 1.5 (LaTeX)
    computed: tuple[Note, ...] = ()  # what the computation adds to the definition
    option_effects: tuple[Note, ...] = ()  # each structural option and the loss it gives
    example: Example | None = None  # the worked example and its snippet
    equivalents: tuple[Equivalent, ...] = ()  # the same loss in other libraries
    links: tuple[tuple[str, str], ...] = ()  # (reference, link or "")
    table: tuple | None = None  # the article's example table: (headers, rows)
    sweeps: tuple[str, ...] = ()  # parameters whose sweep is plotted

    @property
    def reduction(self) -> str:
        """The default reduction and the others the loss accepts, in words."""
        loss = self.loss
        others = [r for r in loss.reductions if r != loss.reduction]
        text = f"Reduction: {loss.reduction} by default"
        return text + (f" (also {', '.join(others)})." if others else ".")

    @property
    def formulas(self) -> tuple[Formula, ...]:
        return self.definitions + self.gradients + self.hessians

    def source(self) -> str:
        """The LaTeX of every formula on the page, each under a ``%`` comment."""
        blocks = [f"% {f.label}\n{f.tex}" for f in self.formulas]
        for pos, step in enumerate(self.steps, 1):
            blocks.append(f"% Derivation, step {pos}: {step.title}\n{step.latex()}")
        return "\n\n".join(blocks) + "\n"


def is_article_loss(loss: Loss) -> bool:
    """True for the source article's own losses (not their compositions)."""
    from symloss.losses.article import ARTICLE

    return ARTICLE in loss.references and loss.composition is None


def input_role(loss: Loss) -> str:
    """What the loss's input is, in words: ``"logits"`` (a loss on logits, composed or
    not), ``"scores"`` (a margin loss's decision function) or ``"prediction"``; read
    from the input's domain, so a page never calls logits a prediction."""
    description = loss.domains[str(loss.pred.label)].description
    if loss.composition is not None or "logit" in description:
        return "logits"
    if "score" in description:
        return "scores"
    return "prediction"


def sheet(loss: Loss) -> Sheet:
    """The format-independent content of the page of *loss*."""
    pred = str(loss.pred.label)
    role = input_role(loss)
    definitions = []
    if is_article_loss(loss):
        definitions.append(
            equation_formula("Definition, in the article's notation", *loss.equation(), "article")
        )
    definitions.append(equation_formula("Definition, in standard notation", *loss.equation()))

    comp = loss.composition
    gradients = []
    if comp is not None:
        base = get(comp.base)
        y = str(comp.element.base.label)
        definitions.append(
            Formula(
                f"The prediction {y} is the {comp.name} of the logits {pred}",
                latex_expr(sp.Eq(comp.element, comp.value, evaluate=False)),
            )
        )
        gradients.append(
            equation_formula(f"Gradient by the prediction {y}", *base.equation("gradient"))
        )
        gradients.append(
            equation_formula(f"Gradient by the logits {pred}", *loss.equation("gradient"))
        )
    else:
        gradients.append(
            equation_formula(f"Gradient by the {role} {pred}", *loss.equation("gradient"))
        )
    used = loss.constraints_used()
    if used:
        general = sp.Eq(sp.Derivative(E, loss.element), loss.general_gradient(), evaluate=False)
        gradients.append(
            equation_formula(
                "Gradient without the constraint that "
                + "; and that ".join(c.description for c in used),
                general.lhs,
                general.rhs,
            )
        )

    hessians = (equation_formula(f"Hessian by the {role} {pred}", *loss.equation("hessian")),)
    if loss.separable:
        hessian_note = (
            "The Hessian is diagonal: this is its diagonal element, and every other entry is 0."
        )
    else:
        hessian_note = (
            f"This is the block of one sample, coupled across the {loss.input_indices[-1][1]} "
            "entries of its row; blocks of different samples are 0."
        )

    roles = {
        str(loss.pred.label): role,
        str(loss.target.label): "target",
    }
    roles.update({str(b.label): "input, by keyword" for b in loss.extra_inputs})
    domains = []
    for label, dom in loss.domains.items():
        role = roles.get(label, "")
        tex = dom.latex()
        if dom.closure is not None and dom.closure != dom.set:
            tex += rf" \quad (\text{{accepted: }} {sp.latex(dom.closure)})"
        domains.append((label, role, tex, dom.description))
    constraints = tuple((c.name, c.latex(), c.description, c in used) for c in loss.constraints)
    values = loss.param_values
    params = tuple(
        (
            latex_expr(p.symbol.label if isinstance(p.symbol, sp.IndexedBase) else p.symbol),
            p.name,
            repr(values[p.name]),
            sp.latex(p.domain) if p.domain is not None else "",
            p.description,
        )
        for p in loss.params
    )
    return Sheet(
        loss=loss,
        definitions=tuple(definitions),
        gradients=tuple(gradients),
        hessians=hessians,
        hessian_note=hessian_note,
        steps=tuple(loss.derivation()),
        domains=tuple(domains),
        constraints=constraints,
        params=params,
        classification=is_classification(loss),
        where=where_tex(loss),
        computed=computed_notes(loss),
        option_effects=option_effects(loss),
        example=worked_example(loss, input_role(loss)),
        equivalents=tuple(equivalents(loss)),
        links=tuple(links(loss)),
        table=article_table(loss),
        sweeps=tuple(p.name for p in loss.params if p.sweep),
    )


# ============================================================================ plots


def is_classification(loss: Loss) -> bool:
    """A target that is a class (a finite set, or 0/1 with soft labels between)."""
    dom = loss.domains.get(str(loss.target.label))
    if dom is None:
        return False
    return isinstance(dom.set, sp.FiniteSet) or dom.set == sp.Interval(0, 1)


def plot_caption(sheet: Sheet) -> str:
    loss = sheet.loss
    ndim = len(loss.input_indices)
    if ndim == 2 and any(c.name == "one_hot" for c in loss.constraints):
        return (
            "One sample with m = 2 classes, swept along the input of class 2; "
            "t = 1 means the sample is of class 2."
        )
    if ndim == 2 and not loss.separable:
        return "One sample: a row of two entries, the first equal in prediction and target."
    if sheet.classification and is_article_loss(loss):
        return "One sample, for each class of the target (as in the article's table)."
    if sheet.classification:
        return "One sample, for each class of the target."
    return "One sample, against the residual between prediction and target."


def sweep_caption(sheet: Sheet, name: str) -> str:
    """The caption of the plot over the sweep of parameter *name*."""
    loss = sheet.loss
    prm = next(p for p in loss.params if p.name == name)
    values = ", ".join(f"{float(v):g}" for v in prm.sweep)
    who = "the positive class, t = 1" if sheet.classification else "against the residual"
    return (
        f"One sample ({who}), for {name} = {values}; the other hyperparameters at their "
        f"values on this page. {prm.description[:1].upper()}{prm.description[1:]}."
    )
