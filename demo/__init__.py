"""Demo data: the portfolio ``manage.py seed_demo`` loads (and so ``make run`` shows).

The app sits at the top of the layers: it may import every domain app and none imports it.
It is installed only where a demo is wanted (``config.settings.local`` and
``config.settings.test``), so production has no ``seed_demo`` command.

Modules, in the order ``demo.seed.seed`` calls them:

- ``catalogue``: teams, services and environments;
- ``users``: one login per role, their groups and teams (and the logins banner);
- ``governance``: gate and quorum policies, the weekly freeze, and ``resolve``, which
  satisfies each governed transition the way people would (green CI, sign-offs, CAB votes,
  freeze exceptions);
- ``portfolio`` and ``lifecycle``: about forty releases and how each one is driven through
  the release services at its historical moment;
- ``governance.after_seed`` then ``delivery``: CAB meetings closed and scheduled, and the
  deployment/incident history the metrics charts need.
"""
