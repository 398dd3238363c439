#!/usr/bin/env bash
# Validate docker-compose.yml with .env.example standing in for .env, so the
# check needs no real secrets and proves .env.example has what compose needs.
set -euo pipefail

cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp docker-compose.yml Dockerfile "$tmp/"
cp .env.example "$tmp/.env"
(cd "$tmp" && docker-compose -f docker-compose.yml config -q)
echo "docker-compose.yml: valid"
