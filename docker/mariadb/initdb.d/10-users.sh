# Run once by the image's entrypoint, as root over the socket, when the data volume is first
# initialised (after it has created MARIADB_DATABASE and MARIADB_USER with every privilege on it).
# The application's user keeps only row privileges; the owner (migrations, the test databases
# test_passline*) gets the rest. Not executable on purpose: the entrypoint then sources it, and
# docker_process_sql is its own helper.
: "${PASSLINE_DB_OWNER_PASSWORD:?set PASSLINE_DB_OWNER_PASSWORD}"
docker_process_sql --database=mysql <<SQL
REVOKE ALL PRIVILEGES, GRANT OPTION FROM '${MARIADB_USER}'@'%';
GRANT SELECT, INSERT, UPDATE, DELETE ON \`${MARIADB_DATABASE}\`.* TO '${MARIADB_USER}'@'%';
CREATE USER IF NOT EXISTS '${MARIADB_USER}_owner'@'%' IDENTIFIED BY '${PASSLINE_DB_OWNER_PASSWORD}';
GRANT ALL PRIVILEGES ON \`${MARIADB_DATABASE}\`.* TO '${MARIADB_USER}_owner'@'%';
GRANT ALL PRIVILEGES ON \`test\\_passline%\`.* TO '${MARIADB_USER}_owner'@'%';
SQL
