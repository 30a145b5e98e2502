-- Run once, as root, when the data volume is first initialised (after the image has created
-- MARIADB_DATABASE and MARIADB_USER). Lets the application user create and drop the test
-- databases pytest-django makes (test_passline, test_passline_e2e, ...), and nothing else.
GRANT ALL PRIVILEGES ON `test\_passline%`.* TO 'passline'@'%';
