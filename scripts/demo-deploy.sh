#!/bin/sh
# The deploy script of the zero-setup demo project in deploy.example.toml.
#
# It deploys nothing: it shows what deployd hands a deploy script (the DEPLOY_*
# variables and the working directory), then takes a couple of seconds with a
# few progress lines, so that `deployd logs -f demo` has something to stream.
set -eu

echo "== demo deploy of ${DEPLOY_PROJECT:-?}, run ${DEPLOY_RUN_ID:-?} (${DEPLOY_TRIGGER:-?}) =="

echo "environment:"
# Sorted so two runs' logs can be compared line by line; sed rather than grep
# because grep fails when nothing matches (the script started by hand).
env | sort | sed -n 's/^DEPLOY_/  DEPLOY_/p'

echo "working directory: $(pwd)"

echo "building..."
for step in 1 2 3; do
    sleep 0.7 2>/dev/null || sleep 1 # plain POSIX sleep takes whole seconds only
    echo "  step $step/3 done"
done

echo "deployed ${DEPLOY_SHA:-(no sha: manual run)}"
