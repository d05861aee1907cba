/** A webhook delivery as the test receiver (test/setup/webhookReceiver.ts) records and lists it. */
export interface ReceivedDelivery {
	path: string;
	headers: Record<string, string | string[] | undefined>;
	/** The body as received. */
	raw: string;
	receivedAt: number;
	respondedAt: number | null;
	status: number;
	/** The signature checked by the receiver with its secret. */
	signatureValid: boolean;
}
