"""Results for people: ``table`` (the terminal tables of ``harness run``), ``build`` (runs →
a ``model.Document``) laid out by ``html`` or ``markdown``, with ``plots`` drawn on ``canvas``,
``scenarios`` for load-scenario rows, ``warnings``, ``comparison`` (``harness compare``'s
output) and ``units`` (numbers with units, fixed-width grids)."""
