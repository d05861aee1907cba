"""The seed template's business-logic hook, as its users wrote it: process_task(task_data)
returns (success, message, result). The worker's --seed adapter must run it unchanged."""

import time
from typing import Any, Dict


def process_task(task_data: Dict[str, Any]) -> tuple:
    task_id = task_data.get("uuid", "unknown")
    time.sleep(0.2)  # the model's work
    if task_data.get("fail"):
        return False, "处理失败: bad input", ""
    success = True
    message = "处理成功"
    result = f"result_for_{task_id}"
    return success, message, result
