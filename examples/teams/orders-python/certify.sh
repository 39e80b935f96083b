#!/bin/sh
# Certify the orders client: the quick catalog by default, PROFILE=standard
# for the whole one. Needs `poolproof` on PATH, Debian's python3-requests,
# and PPDRIVER_DIR: the folder of poolproof's drivers/python/ppdriver.py
# (in the module cache once poolproof is installed; see the workflow).
set -eu
cd "$(dirname "$0")"
: "${PPDRIVER_DIR:?set PPDRIVER_DIR to the folder holding poolproof's ppdriver.py (drivers/python)}"
export PPDRIVER_DIR
exec poolproof certify -driver "/usr/bin/python3 poolproof_driver.py" -contract contract.yaml \
  -profile "${PROFILE:-quick}" -report poolproof-report
