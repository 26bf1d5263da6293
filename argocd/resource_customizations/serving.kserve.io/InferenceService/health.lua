-- ctcd's Argo CD health for a KServe InferenceService, canaries included: a new revision that is not ready yet
-- keeps it Progressing (the earlier one still serves), a new revision that failed makes it Degraded, naming it.
-- Serverless mode reports a canary as Knative revisions (status.components.predictor); Standard mode as
-- status.canaryStatuses, one entry per canary predictor.
local loading = {RevisionLoading = true, Deploying = true, ContainerCreating = true, PodInitializing = true}
local hs = {status = "Progressing", message = "Waiting for the InferenceService to report status"}
if obj.status == nil or obj.status.conditions == nil or #obj.status.conditions == 0 then
  return hs
end
local failed, waiting = nil, {}
for _, condition in ipairs(obj.status.conditions) do
  if condition.status == "False" and not loading[condition.reason or ""] and condition.reason ~= nil then
    failed = failed or condition
  end
  if condition.status ~= "True" then
    table.insert(waiting, condition.type .. " " .. condition.status .. (condition.reason and (" (" .. condition.reason .. ")") or ""))
  end
end
for _, canary in ipairs(obj.status.canaryStatuses or {}) do
  if not canary.ready then
    local model = canary.modelStatus or {}
    local info = model.lastFailureInfo or {}
    if model.transitionStatus == "BlockedByFailedLoad" or (model.states or {}).activeModelState == "FailedToLoad" then
      hs.status = "Degraded"
      hs.message = "canary " .. canary.name .. " failed: " .. (info.message or info.reason or "model failed to load")
    else
      hs.status = "Progressing"
      hs.message = "canary " .. canary.name .. " is not ready yet; the stable predictor serves"
    end
    return hs
  end
end
local predictor = (obj.status.components or {}).predictor or {}
local created, ready = predictor.latestCreatedRevision or "", predictor.latestReadyRevision or ""
if created ~= "" and created ~= ready then
  if failed ~= nil then
    hs.status = "Degraded"
    hs.message = "revision " .. created .. " failed: " .. (failed.message or failed.reason)
  else
    hs.status = "Progressing"
    hs.message = "revision " .. created .. " is not ready yet; " .. (ready ~= "" and (ready .. " serves") or "nothing serves")
  end
  return hs
end
if failed ~= nil then
  hs.status = "Degraded"
  hs.message = failed.type .. ": " .. (failed.message or failed.reason)
elseif #waiting > 0 then
  hs.status = "Progressing"
  hs.message = table.concat(waiting, ", ")
else
  hs.status = "Healthy"
  hs.message = "InferenceService is ready"
  for _, canary in ipairs(obj.status.canaryStatuses or {}) do
    hs.message = "InferenceService is ready; canary " .. canary.name .. " takes " .. (canary.trafficPercent or 0) .. "%"
  end
  for _, target in ipairs(predictor.traffic or {}) do
    if target.latestRevision and target.percent ~= nil and target.percent < 100 then
      hs.message = "InferenceService is ready; canary " .. target.revisionName .. " takes " .. target.percent .. "%"
    end
  end
end
return hs
