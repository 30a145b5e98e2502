#!/usr/bin/env bash
# Idempotent set-up for `make run` and `make test` on a fresh machine:
# OS packages, the three services, the virtualenv, .env, the database and its user.
# Usage: scripts/setup.sh [run|test|bench]   ("run" installs requirements.txt; "test" and "bench"
# requirements-dev.txt too, and "test" makes sure Chromium is there; "bench", wrk and nginx;
# "run" and "test", Prometheus: `make run` starts it, the suite tests its rules with promtool)
set -euo pipefail
cd "$(dirname "$0")/.."

MODE="${1:-run}"
PYTHON="${PYTHON:-python3}"
VENV=.venv
DB_HOST="${DB_HOST:-127.0.0.1}"
DB_PORT="${DB_PORT:-3306}"

say()  { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
warn() { printf '\033[1;33m!!\033[0m %s\n' "$*" >&2; }
die()  { printf '\033[1;31mxx\033[0m %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }
on_debian() { [ -f /etc/debian_version ] && command -v apt-get >/dev/null; }

APT_UPDATED=0
apt_install() {
  # Installs Debian packages when we may; otherwise says exactly what to install.
  if is_root && on_debian; then
    say "Installing Debian packages: $*"
    if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  else
    die "Missing: $*. Install them (on Debian/Ubuntu: sudo apt-get install $*) and run this again."
  fi
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() { # host port seconds name
  local i
  for ((i = 0; i < $3 * 4; i++)); do port_open "$1" "$2" && return 0; sleep 0.25; done
  die "$4 did not answer on $1:$2 within $3 s."
}

# --- OS packages -----------------------------------------------------------------------
missing=()
# fonts-dejavu-core: the receipt PDF's font (billing/receipt_pdf.py), for names in any script.
for pkg in libmariadb-dev pkg-config fonts-dejavu-core; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if [ "$MODE" = test ] && [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
# The security suite runs docker/nginx/nginx.conf in a real nginx (its rate limits, its headers).
if [ "$MODE" = test ] && [ ! -x /usr/sbin/nginx ]; then missing+=(nginx); fi
# The load benchmark's load generator and load balancer (bench/load.py runs nginx itself,
# with a configuration of its own; the package's service is not used).
if [ "$MODE" = bench ]; then
  command -v wrk >/dev/null || missing+=(wrk)
  [ -x /usr/sbin/nginx ] || missing+=(nginx)
fi
# Prometheus beside `make run` (scripts/supervise.py) and promtool for the tests of the alert
# rules (ops/prometheus/). The suite cannot test the rules without it; `make run` starts without
# Prometheus when it cannot be installed here.
if [ "$MODE" = test ] && ! command -v promtool >/dev/null; then missing+=(prometheus); fi
if [ "$MODE" = run ] && ! command -v prometheus >/dev/null; then
  if is_root && on_debian; then missing+=(prometheus); else
    warn "Prometheus is not installed (sudo apt-get install prometheus): make run starts without it."
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  if on_debian; then apt_install "${missing[@]}"; else
    command -v mysql_config >/dev/null || command -v mariadb_config >/dev/null ||
      die "mysqlclient needs the MariaDB/MySQL client headers and pkg-config; install them and run this again."
  fi
  # Installed here for `make run` and the tests, not as a system service: the package's own
  # service would hold port 9090, which `make run`'s Prometheus uses.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null &&
    systemctl is-enabled prometheus >/dev/null 2>&1; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

# --- Services --------------------------------------------------------------------------
ensure_mariadb() {
  port_open "$DB_HOST" "$DB_PORT" && return 0
  [ "$DB_HOST" = 127.0.0.1 ] || die "MariaDB does not answer on $DB_HOST:$DB_PORT."
  if [ ! -x /usr/sbin/mariadbd ]; then
    say "MariaDB is not installed; installing it from Debian's packages."
    apt_install mariadb-server
  fi
  say "Starting MariaDB"
  if is_root; then start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  else die "MariaDB is installed but stopped; start it (sudo service mariadb start)."; fi
  wait_port "$DB_HOST" "$DB_PORT" 60 MariaDB
}

# A broker started with the usual 1024 descriptors: its soft limit raised to its hard one, in
# place (prlimit; no restart, nothing else changes), when we may.
raise_rabbitmq_files() {
  is_root && command -v prlimit >/dev/null || return 0
  local pid
  for pid in $(pgrep -f 'beam.*rabbit' 2>/dev/null); do
    prlimit --pid "$pid" --nofile="$(prlimit --pid "$pid" --nofile --noheadings --output HARD)" 2>/dev/null || true
  done
}

ensure_rabbitmq() {
  port_open 127.0.0.1 5672 && { raise_rabbitmq_files; return 0; }
  if ! command -v rabbitmq-server >/dev/null && [ ! -x /usr/sbin/rabbitmq-server ]; then
    say "RabbitMQ is not installed; installing it from Debian's packages."
    apt_install rabbitmq-server
  fi
  say "Starting RabbitMQ"
  # Every quorum queue keeps files open, and a test session's vhost has forty-odd of them: at
  # the usual 1024 descriptors a few sessions at once would leave the broker refusing
  # connections. (Raised for a broker started here; one already running keeps its limit.)
  if is_root; then (ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; rabbitmq-server -detached >/dev/null 2>&1) || true
  else die "RabbitMQ is installed but stopped; start it (sudo service rabbitmq-server start)."; fi
  wait_port 127.0.0.1 5672 120 RabbitMQ
}

ensure_redis() {
  port_open 127.0.0.1 6379 && return 0
  if ! command -v redis-server >/dev/null; then
    say "Redis is not installed; installing it from Debian's packages."
    apt_install redis-server
  fi
  say "Starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  wait_port 127.0.0.1 6379 30 Redis
}

# RabbitMQ's own Prometheus exporter (shipped with the server; it adds port 15692 and nothing
# else): queue depths and consumers for Prometheus. Enabling it again changes nothing.
ensure_rabbitmq_prometheus() {
  local plugins
  plugins=$(command -v rabbitmq-plugins || echo /usr/sbin/rabbitmq-plugins)
  [ -x "$plugins" ] || return 0
  "$plugins" -q list -e -m 2>/dev/null | grep -qx rabbitmq_prometheus && return 0
  if is_root; then
    say "Enabling RabbitMQ's rabbitmq_prometheus plugin (port 15692)"
    "$plugins" -q enable rabbitmq_prometheus >/dev/null || warn "Could not enable rabbitmq_prometheus."
  else
    warn "RabbitMQ's rabbitmq_prometheus plugin is off (sudo rabbitmq-plugins enable rabbitmq_prometheus): Prometheus will not see the queues."
  fi
}

ensure_mariadb
ensure_rabbitmq
ensure_redis
ensure_rabbitmq_prometheus

# --- Virtualenv ------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "Creating the virtualenv in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
# `run` needs the application's requirements; `test` and `bench` the tools too. Both files pin
# every package with its hashes, so pip checks each download. A stamp per file in the
# virtualenv skips pip entirely when nothing changed.
requirement_files=(requirements.txt)
if [ "$MODE" != run ]; then requirement_files+=(requirements-dev.txt); fi
stale=0
for file in "${requirement_files[@]}"; do
  [ "$(sha256sum "$file" | cut -d' ' -f1)" = "$(cat "$VENV/.$file.sha256" 2>/dev/null || true)" ] || stale=1
done
if [ "$stale" = 1 ]; then
  say "Installing pinned Python dependencies (${requirement_files[*]})"
  "$VENV/bin/python" -m pip install --quiet --require-hashes "${requirement_files[@]/#/-r}"
  for file in "${requirement_files[@]}"; do sha256sum "$file" | cut -d' ' -f1 >"$VENV/.$file.sha256"; done
fi

# --- .env: this checkout's names and secrets, generated once, never committed ------------
# Every checkout on a machine gets names of its own (database, its user, test databases,
# RabbitMQ vhost, Redis key prefix), so a second clone's set-up never touches what the first
# one's running stack uses: no shared user whose password it would have to reset.
if [ ! -f .env ]; then
  say "Writing .env with this checkout's own database user, password and secret key"
  umask 077
  instance="$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(4))')"
  {
    echo "# Generated by scripts/setup.sh for this checkout; the real environment overrides every line."
    echo "DB_NAME=passline_$instance"
    echo "DB_USER=passline_$instance"
    echo "DB_PASSWORD=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(24))')"
    echo "SECRET_KEY=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(50))')"
    echo "RABBITMQ_URL=amqp://guest:guest@127.0.0.1:5672/passline-$instance"
    echo "REDIS_PREFIX=passline-$instance"
  } >.env
fi
from_env() { sed -n "s/^$1=//p" .env | tail -n 1; }
# A line .env lacks (written by an older set-up) is added once; an existing one is never changed.
env_add() { grep -q "^$1=" .env || echo "$1=$2" >>.env; }
new_secret() { "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(24))'; }
env_add DB_OWNER_USER "$(from_env DB_USER)_owner"
env_add DB_OWNER_PASSWORD "$(new_secret)"
# docker-compose.yml has no default secrets: its own broker's password and Erlang cookie.
env_add RABBITMQ_PASSWORD "$(new_secret)"
# Not RABBITMQ_ERLANG_COOKIE: rabbitmqctl reads that name, and .env reaches the environment.
env_add COMPOSE_RABBITMQ_ERLANG_COOKIE "$(new_secret)"
env_add PAYMENT_WEBHOOK_SECRET "whsec_$(new_secret)"
# The ha profile's database replication and administrative (db_promote) accounts.
env_add COMPOSE_DB_REPLICATION_PASSWORD "$(new_secret)"
env_add COMPOSE_DB_ADMIN_PASSWORD "$(new_secret)"
DB_NAME="${DB_NAME:-$(from_env DB_NAME)}"; DB_NAME="${DB_NAME:-passline}"
DB_USER="${DB_USER:-$(from_env DB_USER)}"; DB_USER="${DB_USER:-passline}"
DB_PASSWORD="${DB_PASSWORD:-$(from_env DB_PASSWORD)}"
DB_OWNER_USER="${DB_OWNER_USER:-$(from_env DB_OWNER_USER)}"
DB_OWNER_PASSWORD="${DB_OWNER_PASSWORD:-$(from_env DB_OWNER_PASSWORD)}"
RABBITMQ_URL="${RABBITMQ_URL:-$(from_env RABBITMQ_URL)}"

# --- Database and its two users ----------------------------------------------------------
# The application never connects as root, and its own user (DB_USER) may only read and write
# rows of its database: SELECT, INSERT, UPDATE, DELETE. The owner (DB_OWNER_USER) holds every
# privilege on it and on this checkout's test databases; migrations, the test suite and the
# benchmark connect as the owner. Root is used here, over the local socket, only to create them.
# An existing user's password is never changed: another checkout's stack may be using it.
as_root() {
  local admin=(mariadb -uroot)
  if ! is_root; then command -v sudo >/dev/null && admin=(sudo -n mariadb -uroot); fi
  "${admin[@]}" -e "$1"
}
db_login() { # user password
  MYSQL_PWD="$2" mariadb -h "$DB_HOST" -P "$DB_PORT" -u "$1" -e "USE \`$DB_NAME\`" 2>/dev/null
}
# The application's user holds nothing but row privileges (its grants, as it sees them itself).
db_narrow() {
  ! MYSQL_PWD="$DB_PASSWORD" mariadb -h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" -N -e "SHOW GRANTS" 2>/dev/null |
    grep -qE "ALL PRIVILEGES|CREATE|DROP|ALTER|GRANT OPTION|test\\\\_"
}
test_pattern="test_${DB_NAME}%"
test_pattern="${test_pattern//_/\\_}"
grants_owner() { # host
  echo "GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_OWNER_USER'@'$1';" \
    "GRANT ALL PRIVILEGES ON \`$test_pattern\`.* TO '$DB_OWNER_USER'@'$1';"
}
grants_app() { echo "GRANT SELECT, INSERT, UPDATE, DELETE ON \`$DB_NAME\`.* TO '$DB_USER'@'$1';"; }
exists_elsewhere() {
  die "MariaDB user '$1' exists with another password (another checkout's?). It is left as it is: remove this checkout's .env to get names of its own, or set DB_USER/DB_PASSWORD and DB_OWNER_USER/DB_OWNER_PASSWORD."
}
cannot_create() {
  die "Could not create the database and its users as MariaDB's root. Run as root, or create database '$DB_NAME', user '$DB_OWNER_USER' (all privileges on it) and user '$DB_USER' (SELECT, INSERT, UPDATE, DELETE on it) yourself, with the passwords in .env."
}
if ! db_login "$DB_USER" "$DB_PASSWORD"; then
  say "Creating database '$DB_NAME' and the application's user '$DB_USER'"
  sql="CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
  for host in localhost 127.0.0.1; do
    sql+="CREATE USER IF NOT EXISTS '$DB_USER'@'$host' IDENTIFIED BY '$DB_PASSWORD'; $(grants_app $host)"
  done
  as_root "$sql" || cannot_create
  db_login "$DB_USER" "$DB_PASSWORD" || exists_elsewhere "$DB_USER"
fi
if ! db_login "$DB_OWNER_USER" "$DB_OWNER_PASSWORD"; then
  say "Creating the database's owner '$DB_OWNER_USER'"
  sql=""
  for host in localhost 127.0.0.1; do
    sql+="CREATE USER IF NOT EXISTS '$DB_OWNER_USER'@'$host' IDENTIFIED BY '$DB_OWNER_PASSWORD'; $(grants_owner $host)"
  done
  as_root "$sql" || cannot_create
  db_login "$DB_OWNER_USER" "$DB_OWNER_PASSWORD" || exists_elsewhere "$DB_OWNER_USER"
fi
# A user this checkout logs in as (so its own) that an older set-up gave every privilege keeps
# only the row privileges; its password is untouched and a running stack needs nothing more.
if ! db_narrow; then
  say "Narrowing '$DB_USER' to SELECT, INSERT, UPDATE, DELETE on '$DB_NAME'"
  sql=""
  for host in localhost 127.0.0.1; do
    sql+="REVOKE ALL PRIVILEGES, GRANT OPTION FROM '$DB_USER'@'$host'; $(grants_app $host)"
  done
  as_root "$sql" || warn "Could not narrow '$DB_USER' (MariaDB's root is needed); it keeps its privileges."
fi

# --- RabbitMQ: this checkout's vhost and one user per process role -----------------------
# (the tests make vhosts and users of their own). Each role's password is generated into .env
# once; `manage.py bus_users` creates the users that are missing (an existing user's password
# is never changed: another running stack may use it) and sets every role's permissions on
# this vhost (bus/roles.py, docs/security.md).
ensure_rabbitmq_vhost() {
  local vhost="${RABBITMQ_URL##*/}"; vhost="${vhost%%\?*}"; vhost="${vhost//%2F//}"; vhost="${vhost//%2f//}"
  [ -n "$vhost" ] && [ "$vhost" != / ] && [[ "$RABBITMQ_URL" == *@127.0.0.1:* ]] || return 0
  local ctl role variable
  ctl=$(command -v rabbitmqctl || echo /usr/sbin/rabbitmqctl)
  if ! "$ctl" -q list_vhosts 2>/dev/null | grep -qxF "$vhost"; then
    say "Creating RabbitMQ vhost '$vhost'"
    "$ctl" -q add_vhost "$vhost" >/dev/null ||
      die "Could not create RabbitMQ vhost '$vhost' (rabbitmqctl needs root). Create it, or set RABBITMQ_URL."
  fi
  for role in $("$VENV/bin/python" manage.py bus_users --list-roles); do
    variable="RABBITMQ_PASSWORD_$(printf '%s' "$role" | tr 'a-z-' 'A-Z_')"
    if ! grep -q "^$variable=" .env; then
      (umask 077; echo "$variable=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(24))')" >>.env)
    fi
  done
  "$VENV/bin/python" manage.py bus_users >/dev/null ||
    die "Could not create the RabbitMQ users of '$vhost' (rabbitmqctl needs root)."
}
if [ "$MODE" = run ]; then ensure_rabbitmq_vhost; fi
say "Set-up complete: MariaDB, RabbitMQ and Redis answer; $VENV is ready."
