#!/usr/bin/env bash
# Installs and starts what the test suite needs beyond Python packages.
# (PostgreSQL, Redis and Chromium are added here by the issues that need them.)
set -euo pipefail
mkdir -p var
