"""Facts read from the target's code (routes, ORM and migration schema, settings,
production validation, metrics, e-mail, jobs, tests, external calls, profiles): the
shared models the checks judge."""
