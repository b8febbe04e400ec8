# The page's compression example; the page's literal version id is replaced by the platform's.
from qianfan.model import Model
from qianfan.resources.console import consts as console_consts

m: Model = Model(id="amv-xx")
new_model: Model = m.compress(
    strategy=console_consts.ModelCompStrategy.Quantization,
    weight=console_consts.ModelQuantizationWeight.INT8PTQ,
)

report({"id": new_model.id, "set_id": new_model.set_id})
