"""The Slack surface: the Bolt app, its middleware and listeners, Block Kit, App Home, HTTP server.

Knows nothing of how adapters are trained: the learning loop reaches it only as the `Learning`
protocol in `services`, handed over by `bot.runtime`.
"""
