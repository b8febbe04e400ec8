# The page's batch-inference example; only `version_id=` is spelled `id=` (see model_by_id.py).
from qianfan.model import Model
from qianfan.dataset import Dataset

ds = Dataset.load(qianfan_dataset_id="ds-xx")
m = Model(id="amv-xx")

result = m.batch_inference(dataset=ds)

report({"rows": result.list(), "set_id": m.set_id})
