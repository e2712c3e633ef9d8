"""`python -m ops.tables`: create every table of the platform that is missing.

What the cluster's table Job runs (istio/base/tables-job.yaml) before the services start;
`./dev up` does the same for the local stack. Safe to run again: an existing table is
left as it is. Exit 0 when every table is ACTIVE.
"""

from __future__ import annotations

from common.dynamo import ensure_table
from ops.settings import StoreSettings, ToolStore


def main() -> None:
    settings = StoreSettings()
    client = ToolStore(settings.dynamodb_endpoint, settings.aws_region).client
    for name in settings.tables().values():
        ensure_table(client, name)
        print(f"table {name}: ACTIVE")


if __name__ == "__main__":
    main()
