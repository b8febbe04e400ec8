# The page's first example with the keyword the SDK's Model takes (`id`, not the page's `version_id`):
# the set id is filled in from the platform.
from qianfan.model import Model

m = Model(id="amv-xx")

report({"id": m.id, "set_id": m.set_id})
