-- ctcd's Argo CD health for a KServe InferenceGraph: Healthy when Ready, Progressing while the services it
-- routes to load, Degraded (with the reason) when it cannot become Ready.
local loading = {ServicesNotReady = true, Deploying = true, RevisionMissing = true, Progressing = true}
local hs = {status = "Progressing", message = "Waiting for the InferenceGraph to report status"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    local why = condition.message or condition.reason or ""
    if condition.status == "True" then
      hs.status = "Healthy"
      hs.message = "InferenceGraph is ready"
    elseif condition.status == "Unknown" or loading[condition.reason or ""] then
      hs.status = "Progressing"
      hs.message = "Waiting for the services it routes to: " .. why
    else
      hs.status = "Degraded"
      hs.message = (condition.reason or "NotReady") .. ": " .. why
    end
  end
end
return hs
