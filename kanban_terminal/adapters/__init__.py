"""Adapters: the edges where the terminal meets MQTT, serial ports and the outside world."""
