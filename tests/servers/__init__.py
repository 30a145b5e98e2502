"""Private servers that a fault test (or `make chaos`) may stop, kill or partition: a RabbitMQ
cluster, a MariaDB primary with its replica, a Redis master with replicas and Sentinels. Each
runs on its own ports and data directory, so a failing test never leaves the machine's shared
services down."""
