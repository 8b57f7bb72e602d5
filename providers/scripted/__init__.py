"""The scripted vendor server: speaks each wire protocol over real loopback sockets, for tests and the demo."""
