"""The tray: a pure presenter (state → menu model), Pillow icons, and the one pystray view.

``presenter`` and ``icons`` never touch a toolkit; ``view`` is the only module importing pystray;
``controller`` glues the token service and autostart to the view; ``launch.serve`` is what
``kubetray run`` calls to block on the tray (or headless) until the daemon stops.
"""
