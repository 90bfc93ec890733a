"""What the stack costs: ``make cost STACK=prod`` (``python -m cost prod [--rate N]``).

- ``cost.prices``: the price table (``cost/prices.json``: prices, quotas, models, each with
  its source) and the rate of each region;
- ``cost.facts``: what the program creates, read from its resources under the mocks
  (``cost.program`` runs it); ``cost.measure`` counts what a turn does on the local stack
  (``cost.turn.TurnProfile``), ``cost.turn.Assumptions`` names every other figure;
- ``cost.services``: the arithmetic (pure), one module per AWS service; ``cost.long_tools``
  the long tools' (Fargate, the task machine);
- ``cost.sessions``: the model's tokens, turn by turn in sessions;
- ``cost.report`` builds the report's figures, ``cost.render`` prints them.
"""
