"""Everything that talks to the outside world: database, files, mail, SFTP, HTTP."""
