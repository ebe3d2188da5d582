import {
  answerInvoke,
  callFromChannel,
  type Answer,
  type Handlers,
} from '../core/host/contract.js';
import { isTrustedSender, type IpcSenderFacts } from './window-policy.js';

/**
 * Main's side of one invoke: refuse untrusted senders, then validate against the
 * contract and run the handler (answerInvoke never throws). The registration in
 * main.ts is one loop over the contract's names; this is what it calls.
 */
export async function answerIpc(
  handlers: Handlers,
  channel: string,
  arg: unknown,
  sender: IpcSenderFacts,
  windowId: number | undefined,
): Promise<Answer<unknown>> {
  if (!isTrustedSender(sender, windowId))
    return { type: 'error', message: 'IPC refused: not from the dashboard window' };
  return answerInvoke(handlers, callFromChannel(channel) ?? channel, arg);
}
