// Public API of @strata/rules.
export { Template, TemplateError, type TemplateData } from "./template/exec.js";
export { formatFloat, sprintf, GoInt } from "./template/gofmt.js";
export { humanize, humanize1024, humanizeDuration, type Sample as TemplateSample, type QueryFn } from "./template/funcs.js";
export { parseRuleFile, loadRuleFile, RuleFileError, type GroupConfig, type RuleConfig, type AlertingRuleConfig, type RecordingRuleConfig } from "./rulefile.js";
export { loadRules, expandGlob } from "./load.js";
export { AlertingRule, ALERT_METRIC, ALERT_FOR_STATE_METRIC, labelsKey, type Alert, type AlertState } from "./alerting.js";
export { Group, RecordingRule, type Rule, type GroupOptions } from "./group.js";
export { runRuleTestFile, engineDatasource, vectorOf, type RuleTestResult } from "./unittest.js";
export type { Datasource, VectorSample, OutputSample, SampleSink, NotifierAlert, Notifier } from "./types.js";
export { RuleManager, type AlertJson, type RulesFilter } from "./manager.js";
export { replay, type ReplayProgress } from "./replay.js";
export { HttpClient, type ClientOptions, type ClientAuth, type ClientTls } from "./client/http.js";
export { HttpDatasource } from "./client/datasource.js";
export { AlertmanagerNotifier, type AlertmanagerTarget } from "./client/notifier.js";
export { RemoteWriteQueue, encodeWriteRequest, type RemoteWriteOptions } from "./client/remotewrite.js";
