"""The catalog, one module per family.

The registry imports the families on demand (``symloss.get("bce")`` imports only the
family that defines ``bce``, which keeps ``symloss show bce`` quick to start;
``symloss.names()`` and ``symloss.catalog()`` import them all), always in this order.
"""

FAMILIES = (
    "_article",
    "_classification",
    "_distributions",
    "_margin",
    "_probabilistic",
    "_regression",
    "_similarity",
)
