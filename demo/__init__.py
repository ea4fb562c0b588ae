"""Demo data: ``fieldsync demo`` / ``make demo`` builds the Alto Mayo programme.

A realistic data set made through the real sync API, at the programme's scale, for
trying the service and its reports: simulated tablets of extension workers and
rangers record field work offline for days, then push their outbox in batches and
pull, interleaved in time as the field work was. Every push answer is checked.

What it makes, at ``--scale 1`` (every count is shrunk by ``--scale``, see
``targets``):

- 6 sectors, 20 communities, 5 extension workers and 6 rangers with their tablets,
  a coordinator ``demo-coordinadora`` and a ranger lead ``demo-jefe``;
- 1,600 households with their people (about 7,200), registered in 2017; 1,300 of
  them with a conservation agreement, renewed every one to three years, in force
  today;
- coffee training 2018-2020: exactly 2,800 participants, 661 women (23.6 %), each at
  one to five sessions; financial-skills sessions; 80 school sessions counted by
  headcount, 3,300 young people;
- six months of patrols (360), with tracks and observations, most reviewed;
- 12 people registered twice, 24 attendances recorded by two tablets (folded into
  one), 6 open conflicts.

The same ``--seed`` and ``--today`` give the same data. Then the figures are counted
by SQL and must be exactly those.

    targets.py  the figures, scaled, and exact splits of a total
    office.py   sectors, communities, categories, users and tablets, over HTTP
    tablet.py   a simulated tablet: outbox, batched push with expected results, pull
    field.py    the programme's history as events, replayed with the tablets' syncs
    figures.py  the figures by SQL, with the attendance report's rules
    run.py      the command

A client of the service like ``bench``: it talks HTTP only and never imports ``api``;
nothing the server runs imports it (``api.cli`` only hands ``fieldsync demo`` over).
"""
