"""Entry point of the Flex Template (docker/flex-template.json, FLEX_TEMPLATE_PYTHON_PY_FILE):
``--job=NAME`` picks the duet command; see duet.dataflow.launcher_argv."""

import sys

from duet.cli import main
from duet.dataflow import launcher_argv

if __name__ == "__main__":
    sys.exit(main(launcher_argv(sys.argv[1:])))
