"""The production deployment of examples/deploy, run for real: nginx and Caddy on loopback in
front of ``mesure serve``, and the systemd unit checked by systemd's own tools."""
