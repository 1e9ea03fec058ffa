"""``council serve``: a local web app to convene councils and watch them live, browse the
ledger's runs, experiments, personas and protocols. Server-rendered pages with a little
JavaScript, every asset served from the package (the page works offline), the run's event
stream sent to the browser as server-sent events. Loopback only unless told otherwise."""
