"""The Slack application and the process around it: wires camel/ and storage/."""
