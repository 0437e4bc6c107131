from vcam.cli import entry

entry()
