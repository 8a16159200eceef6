"""The offline demo of the whole loop: `camel-bot demo`.

A local stand-in for Slack's Web API, the real Bolt app in HTTP mode on 127.0.0.1, the real
learning loop, and a simulated team that posts signed events and corrects the bot. Modules:
`data` (what the team says), `slack_events` (signed requests), `team` (the people),
`report` (table, PNG, HTML), `runner` (wires it all and runs the rounds).
"""

from bot.errors import DemoError

__all__ = ["DemoError"]
