# Shared by scripts/test and scripts/perf: PostgreSQL and nats-server (JetStream) installed from
# Debian's packages and started when they are not; exports OMS_TEST_POSTGRES_URL and
# OMS_NATS_SERVER_BIN. Source it from the repository root.

say() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_ready=""
apt_install() {
  if [ -z "$apt_ready" ]; then as_root apt-get update -qq; apt_ready=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for_port() {
  for _ in $(seq 1 120); do port_open "$1" && return 0; sleep 0.25; done
  echo "nothing listens on 127.0.0.1:$1 after 30 s" >&2; return 1
}

say "PostgreSQL"
command -v psql >/dev/null && command -v pg_ctlcluster >/dev/null || apt_install postgresql
if ! port_open 5432; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_for_port 5432
fi
export OMS_TEST_POSTGRES_URL="${OMS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! psql "$OMS_TEST_POSTGRES_URL" -Atqc 'select 1' >/dev/null 2>&1; then
  # A fresh Debian cluster wants a password over TCP: give the postgres role a test password.
  as_root su postgres -c "psql -qc \"ALTER ROLE postgres PASSWORD 'postgres'\"" >/dev/null
  export OMS_TEST_POSTGRES_URL="postgres://postgres:postgres@127.0.0.1:5432/postgres"
  psql "$OMS_TEST_POSTGRES_URL" -Atqc 'select 1' >/dev/null
fi
# Databases left behind by interrupted runs.
for db in $(psql "$OMS_TEST_POSTGRES_URL" -Atqc "select datname from pg_database where datname like 'oms_test_%'"); do
  psql "$OMS_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true
done
psql "$OMS_TEST_POSTGRES_URL" -Atqc 'show server_version'

say "NATS with JetStream"
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || apt_install nats-server
nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
export OMS_NATS_SERVER_BIN="$nats_bin"
if ! port_open 4222; then
  as_root mkdir -p /var/lib/nats-server
  as_root start-stop-daemon --start --oknodo --background --exec "$nats_bin" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_for_port 4222
fi
"$nats_bin" --version
