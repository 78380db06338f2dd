"""The catalog, one module per family.

The registry imports the families on demand (``symloss.get("bce")`` imports only the
family that defines ``bce``, which keeps ``symloss show bce`` quick to start;
``symloss.names()`` and ``symloss.catalog()`` import them all), always in this order.
"""

FAMILIES = (
    "article",
    "classification",
    "distributions",
    "margin",
    "probabilistic",
    "regression",
    "similarity",
)
