# The page's deployment example. Edits: `version_id=` is spelled `id=`; `DeployConfig`, which the page uses
# without importing, is imported from qianfan.model; the problem is one the demo model can answer.
from qianfan import ChatCompletion
from qianfan.model import DeployConfig, Model, Service
from qianfan.model.consts import ServiceType
from qianfan.resources.console.consts import DeployPoolType

m = Model(id="amv-xx")
#m.auto_complete_info() to fix if model id not found
sft_svc: Service = m.deploy(DeployConfig(
    name="your_service_name",
    endpoint_suffix="your_sdk_suffix",
    replicas=1, # 副本数， 与qps强绑定
    pool_type=DeployPoolType.PrivateResource, # 私有资源池
    service_type=ServiceType.Chat,
    hours=1, # 预付费购买的时长
))

### 使用Service调用部署好的模型服务
problem="23+45=?"
#获取服务对象，即ChatCompletion等类型的对象
chat_comp: ChatCompletion = sft_svc.get_res()
sft_chat_resp = chat_comp.do(messages=[{"content": problem, "role": "user"}])
sft_chat_resp["result"]

report({"result": sft_chat_resp["result"], "service_id": sft_svc.id, "endpoint": sft_svc.endpoint})
