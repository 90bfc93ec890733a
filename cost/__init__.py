"""What the stack costs: ``make cost STACK=prod`` (``python -m cost prod [--rate N]``).

``cost.model`` is the arithmetic (pure), ``cost.program`` reads the resources the program
creates under the mocks, ``cost.measure`` counts what a turn does on the local stack, and
``cost/prices.json`` holds the prices and quotas with their sources.
"""
