# Run once by the image's entrypoint, like 10-users.sh: the administrative account that
# `manage.py db_promote` and `db_rejoin` use (settings DB_ADMIN_USER) to stop or start
# replication, switch read_only and cut off the clients of a fenced primary. The replica of the
# ha profile gets it through replication.
: "${PASSLINE_DB_ADMIN_PASSWORD:?set PASSLINE_DB_ADMIN_PASSWORD}"
docker_process_sql --database=mysql <<SQL
CREATE USER IF NOT EXISTS 'passline_admin'@'%' IDENTIFIED BY '${PASSLINE_DB_ADMIN_PASSWORD}';
GRANT READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, REPLICATION MASTER ADMIN, REPLICA MONITOR, BINLOG ADMIN, BINLOG MONITOR, CONNECTION ADMIN, PROCESS ON *.* TO 'passline_admin'@'%';
SQL
