from tests.bot.conftest import support_adapter_dir  # noqa: F401  (a real adapter for predict)
from tests.storage.conftest import db_path  # noqa: F401
