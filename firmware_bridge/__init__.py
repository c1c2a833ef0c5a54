"""firmware_bridge: line-side microcontrollers (button, bin sensor, stack light) over serial, to MQTT.

A separate process from the terminal, so a misbehaving USB device can never stall a scan. It shares
only the topic tree (`kanban_terminal.adapters.topics`) and the escaping of external text with it.
"""
