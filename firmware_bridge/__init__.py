"""firmware_bridge: line-side microcontrollers (button, bin sensor, stack light) over serial, to MQTT.

A separate process from the terminal, so a misbehaving USB device can never stall a scan. It shares
with it the topic tree (`kanban_terminal.topics`), the MQTT link and its settings
(`kanban_terminal.adapters.mqtt_client`, `kanban_terminal.mqtt_settings`) and the escaping of
external text; never the terminal's storage, services or screens.
"""
