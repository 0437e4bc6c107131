"""Live mode (vcam run, vcam ctl): the daemon, its controller, control socket, config reload, tray and on-demand camera."""
