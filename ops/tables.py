"""`python -m ops.tables`: create every table of the platform that is missing.

What the cluster's table Job runs (istio/base/tables-job.yaml) before the services start;
`./dev up` does the same for the local stack. Safe to run again: an existing table is
left as it is. Exit 0 when every table is ACTIVE, else 2 with one line on stderr (as
`python -m ops`).
"""

from __future__ import annotations

import sys

from botocore.exceptions import BotoCoreError, ClientError

from common.dynamo import ensure_table
from common.errors import DomainError
from ops.settings import StoreSettings, ToolStore, client_error_reason, failed


def main() -> int:
    settings = StoreSettings()
    client = ToolStore(settings.dynamodb_endpoint, settings.aws_region).client
    try:
        for name in settings.tables().values():
            ensure_table(client, name)
            print(f"table {name}: ACTIVE")
    except DomainError as error:  # the store did not answer
        return failed("tables", f"{error.message} ({error.reason})")
    except BotoCoreError as error:  # no answer at all (a call outside the store plumbing)
        return failed("tables", f"the store did not answer: {error} (STORE_UNAVAILABLE)")
    except ClientError as error:  # the store refused (no access, say)
        return failed("tables", client_error_reason(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
