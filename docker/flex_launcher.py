"""Entry point of the Flex Template (docker/flex-template.json, FLEX_TEMPLATE_PYTHON_PY_FILE):
``--job=NAME`` picks the duet command; see duet.dataflow.launcher_argv."""

import sys

from duet.cli import main
from duet.dataflow import launcher_argv
from duet.errors import UsageError

if __name__ == "__main__":
    try:
        argv = launcher_argv(sys.argv[1:])
    except UsageError as exc:
        print(f"flex template: {exc}", file=sys.stderr)
        sys.exit(exc.exit_status)
    sys.exit(main(argv))
