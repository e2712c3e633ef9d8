"""The integration suite's shared fixtures, defined once for the whole folder.

They are imported here and nowhere else: a session-scoped fixture imported into a test
module is a new fixture of that module, set up once per module and kept to the end of
the session (tests/thread_leaks.py refuses that)."""

from tests.integration.inventory_fixtures import (  # noqa: F401 - fixtures
    inventory,
    inventory_channel,
    inventory_server,
    inventory_settings_fast,
)
from tests.integration.limit_fixtures import limits, make_limit_stack  # noqa: F401 - fixtures
from tests.integration.order_fixtures import *  # noqa: F403 - fixtures
