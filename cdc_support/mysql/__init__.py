"""MySQL/MariaDB: addresses and connections, and the native binlog reader."""
