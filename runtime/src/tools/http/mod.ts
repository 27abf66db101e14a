export { httpRequestTool, type HttpToolOptions } from './http-tool.js';
export { allowsAddress, embeddedIpv4, nonPublicClass, parseAllowList, type HttpAllowList } from './address.js';
