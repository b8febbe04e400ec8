# The SDK page's first example, verbatim: a Model "by version id".
# In qianfan 0.4.12.3 Model.__init__ has no `version_id` parameter (it takes `id`); the keyword falls into
# **kwargs and is ignored, so this model has no id and nothing is asked of the platform.
from qianfan.model import Model

m = Model(version_id="amv-xx")

report({"id": m.id, "set_id": m.set_id})
