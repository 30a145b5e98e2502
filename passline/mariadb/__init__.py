"""MariaDB beyond one server: the database backend that finds the primary among DB_HOSTS
(``base``), which host is which (``hosts``), and promotion and re-joining (``replication``)."""
