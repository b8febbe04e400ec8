# Model.compress of qianfan 0.4.12.3 step by step (qianfan/model/model.py), because the method itself cannot
# run: it calls ResourceModel.V2.create_model_comp_task(config=...) by keyword, and the SDK's
# console_api_request decorator passes every keyword on to ConsoleAPIRequestor(**kwargs), where `config`
# replaces the SDK's Config object (AttributeError: 'dict' object has no attribute 'ENABLE_PRIVATE').
# The same request builders are called here with `config` passed positionally; the polling loop is the
# method's own, with a 1 s sleep instead of its fixed 15 s.
import time

from qianfan.model import Model
from qianfan.resources.console import consts as console_consts
from qianfan.resources.console.model import Model as ResourceModel

m = Model(id="amv-xx")
detail = ResourceModel.V2.describe_model(model_id=m.id)
assert detail["result"].get("isSupportModelComp")
strategy = console_consts.ModelCompStrategy.Quantization
weight = console_consts.ModelQuantizationWeight.INT8PTQ
config = {"strategy": strategy.value, "weight": weight.value}
task_id = ResourceModel.V2.create_model_comp_task(
    "mco_sdkoracle01", m.id, config, m.set_id, f"mcomp_{m.id}_{strategy.value}_{weight}"
)["result"]
while True:
    time.sleep(1)
    task = ResourceModel.V2.describe_model_comp_task(task_id)["result"]
    if task["status"] not in ("running", "creating"):
        break
assert task["status"] == "succeeded", task
new_model = Model(id=task.get("modelId"))
new_model.auto_complete_info()

report({"task_id": task_id, "id": new_model.id, "set_id": new_model.set_id, "source": m.id})
