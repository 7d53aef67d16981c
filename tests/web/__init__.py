"""Real web servers (Apache, nginx) and wucme's responders validated by Pebble."""
